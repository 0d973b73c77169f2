-- CreateTable
CREATE TABLE "PlaylistLiveItem" (
    "id" TEXT NOT NULL,
    "virtualLiveId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "sourceUrl" TEXT NOT NULL,
    "durationSeconds" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "PlaylistLiveItem_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "PlaylistLiveItem_virtualLiveId_position_key" ON "PlaylistLiveItem"("virtualLiveId", "position");

-- AddForeignKey
ALTER TABLE "PlaylistLiveItem" ADD CONSTRAINT "PlaylistLiveItem_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive"("id") ON DELETE CASCADE ON UPDATE CASCADE;
