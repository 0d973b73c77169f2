-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "liveTranscode" TEXT NOT NULL DEFAULT 'AUTO';
