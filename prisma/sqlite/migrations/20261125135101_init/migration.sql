-- CreateTable
CREATE TABLE "VodResource" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "container" TEXT NOT NULL,
    "durationSeconds" REAL NOT NULL,
    "videoCodec" TEXT,
    "videoProfile" TEXT,
    "width" INTEGER,
    "height" INTEGER,
    "frameRate" REAL,
    "videoDurationSeconds" REAL,
    "audioCodec" TEXT,
    "audioSampleRate" INTEGER,
    "audioChannels" INTEGER,
    "audioDurationSeconds" REAL,
    "copyable" BOOLEAN NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "VirtualLive" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "sourceType" TEXT NOT NULL,
    "vodResourceId" TEXT,
    "sourceUrl" TEXT,
    "loop" BOOLEAN NOT NULL DEFAULT true,
    "desiredState" TEXT NOT NULL DEFAULT 'STOPPED',
    "status" TEXT NOT NULL DEFAULT 'STOPPED',
    "errorString" TEXT,
    "workerId" TEXT,
    "startedAt" DATETIME,
    "stoppedAt" DATETIME,
    "connectTimeoutMs" INTEGER NOT NULL DEFAULT 10000,
    "startCount" INTEGER NOT NULL DEFAULT 0,
    "restartCount" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "VirtualLive_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "PushTarget" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "virtualLiveId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "url" TEXT NOT NULL,
    CONSTRAINT "PushTarget_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "VirtualLive_desiredState_idx" ON "VirtualLive"("desiredState");

-- CreateIndex
CREATE UNIQUE INDEX "PushTarget_virtualLiveId_position_key" ON "PushTarget"("virtualLiveId", "position");
